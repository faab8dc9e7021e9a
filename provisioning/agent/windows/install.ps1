#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Installs (or upgrades) the Lordi telemetry agent on a Windows 10/11 laptop.

.DESCRIPTION
    1. installs the agent package into the private Python of
       C:\Program Files\Lordi\agent\python (put there beforehand, see
       docs/install-agent.md);
    2. creates C:\ProgramData\Lordi and its logs folder, readable and writable by
       SYSTEM and Administrators only: agent.toml holds the MQTT password;
    3. installs agent.toml (when -ConfigFile is given) and checks it;
    4. registers the scheduled task \Lordi\LordiAgent from lordi-agent-task.xml
       (next to this script) and starts it.
    Running it again upgrades the package and re-registers the task; the spool
    (samples not yet sent) is kept.

    Why a scheduled task and not a Windows service: a service must answer the
    Service Control Manager, which python.exe cannot do by itself. That takes
    pywin32 (about 10 MB more, a DLL registration step, and pythonservice.exe) or a
    third-party wrapper binary (NSSM, WinSW) to vet, sign and update on 200,000
    laptops. Task Scheduler is part of Windows: it starts the plain Python program
    at boot as SYSTEM, restarts it, runs it on battery at low priority, and is
    deployed with one built-in cmdlet.

    Identities are given by SID, never by name: on a French Windows the groups
    are "Administrateurs" and "Systeme", so English names would not resolve.

    Not run here: this script has not been executed on Windows by the project's
    tests (no Windows machine); the task XML is checked by tests/agent/test_service_files.py.

.PARAMETER ConfigFile
    agent.toml to install (school, device, broker, school SSIDs). Required on the
    first installation; on an upgrade, the installed file is kept when omitted.

.PARAMETER Package
    The path of the project's wheel file (built from the repository with
    `python -m build --wheel`). Required: the package is not published on an index,
    and a name would let pip take whatever an index offers under it.

.EXAMPLE
    powershell -ExecutionPolicy Bypass -File install.ps1 -ConfigFile .\agent.toml -Package .\lordi_telemetry-0.1.0-py3-none-any.whl
#>
[CmdletBinding()]
param(
    [string]$ConfigFile,
    [Parameter(Mandatory = $true)][string]$Package
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

# These paths are also written in lordi-agent-task.xml: change both together.
$InstallDir = "C:\Program Files\Lordi\agent"
$Python = Join-Path $InstallDir "python\python.exe"
$DataDir = "C:\ProgramData\Lordi"
$LogDir = Join-Path $DataDir "logs"
$Config = Join-Path $DataDir "agent.toml"
$TaskPath = "\Lordi\"
$TaskName = "LordiAgent"
$TaskXml = Join-Path $PSScriptRoot "lordi-agent-task.xml"

$SystemSid = "S-1-5-18"          # NT AUTHORITY\SYSTEM (French: AUTORITE NT\Systeme)
$AdministratorsSid = "S-1-5-32-544"  # BUILTIN\Administrators (Administrateurs)

if (-not (Test-Path -LiteralPath $Python -PathType Leaf)) {
    throw "No Python at $Python. Install Python 3.11+ there first (see docs/install-agent.md)."
}
if (-not (Test-Path -LiteralPath $TaskXml -PathType Leaf)) {
    throw "lordi-agent-task.xml must be next to this script ($TaskXml not found)."
}

# 1. Stop a running agent: Windows locks the files pip must replace on upgrade.
$existing = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue
if ($null -ne $existing) {
    Write-Host "Stopping the running agent for the upgrade"
    # Disabled first, so that the 5-minute trigger cannot start it again meanwhile;
    # registering the task below enables it again.
    Disable-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName | Out-Null
    Stop-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
    for ($i = 0; $i -lt 30; $i++) {
        if ((Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName).State -ne "Running") { break }
        Start-Sleep -Seconds 1
    }
}

# 2. The package, into the private Python only (C:\Program Files: users cannot write
#    there, which matters because SYSTEM runs this code).
Write-Host "Installing $Package"
& $Python -m pip install --disable-pip-version-check --no-warn-script-location --upgrade $Package
if ($LASTEXITCODE -ne 0) { throw "pip install failed (exit code $LASTEXITCODE)" }

# 3. Data folder: SYSTEM and Administrators only, inheritance from C:\ProgramData
#    removed (it lets every user read and create files). Done before the config is
#    copied, so the password is never readable by others, not even for a moment.
New-Item -ItemType Directory -Force -Path $DataDir, $LogDir | Out-Null
& icacls.exe $DataDir /inheritance:r /grant:r "*${SystemSid}:(OI)(CI)F" "*${AdministratorsSid}:(OI)(CI)F" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls failed on $DataDir (exit code $LASTEXITCODE)" }
& icacls.exe $DataDir /setowner "*$AdministratorsSid" /T /C /Q | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls /setowner failed on $DataDir (exit code $LASTEXITCODE)" }
# Files already there (upgrade) get the folder's permissions back.
& icacls.exe "$DataDir\*" /reset /T /C /Q | Out-Null

# 4. Configuration.
if ($ConfigFile) {
    # Copy (not move): the new file inherits the folder's restricted permissions.
    Copy-Item -LiteralPath $ConfigFile -Destination $Config -Force
} elseif (-not (Test-Path -LiteralPath $Config -PathType Leaf)) {
    throw "No configuration: pass -ConfigFile agent.toml (see provisioning/agent/agent.toml)."
}
& $Python -I -m agent.cli --config $Config check-config
if ($LASTEXITCODE -ne 0) { throw "The configuration $Config is not valid (see above)." }

# 5. The scheduled task. The XML is ASCII, read as one string.
$xml = Get-Content -LiteralPath $TaskXml -Raw -Encoding UTF8
Register-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -Xml $xml -Force | Out-Null
Start-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName

Start-Sleep -Seconds 5
$info = Get-ScheduledTaskInfo -TaskPath $TaskPath -TaskName $TaskName
$state = (Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName).State
Write-Host "Task $TaskPath$TaskName is $state (last result $($info.LastTaskResult))."
Write-Host "Log: $LogDir\agent.log"
