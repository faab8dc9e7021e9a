#Requires -Version 5.1
#Requires -RunAsAdministrator
<#
.SYNOPSIS
    Installs (or upgrades, or removes) the Lordi telemetry agent on a Windows 10/11
    laptop from an offline package made by `lordi bundle windows`. No network access.

.DESCRIPTION
    Run from the package folder (a deployment share, or the folder an MSI installed):
    this script, lordi-agent-task.xml, bundle.json, SHA256SUMS, wheels\ and, usually,
    agent.toml (the school configuration) and ca.crt (the broker's CA).

    1. creates C:\ProgramData\Lordi and its logs folder, readable and writable by
       SYSTEM and Administrators only (agent.toml holds the school's enrolment secret
       or a broker password); this run's log goes to logs\install.log;
    2. checks every file of the package against SHA256SUMS;
    3. finds a 64-bit CPython of a version the package has wheels for, installed for
       all users (the registry, PEP 514), or takes -Python;
    4. makes a virtual environment in C:\Program Files\Lordi\agent\venv.new and
       installs the agent's wheel with pip run from the package's own pip wheel,
       --no-index --find-links <package>\wheels: only the package's wheels, no
       index, no pip configuration file or PIP_* variable of the machine;
    5. installs ca.crt and agent.toml (when in the package, or -ConfigFile) and has
       the new agent check the configuration (check-config);
    6. stops a running agent, puts the new environment in place of the old one
       (C:\Program Files\Lordi\agent\venv), registers the scheduled task
       \Lordi\LordiAgent from lordi-agent-task.xml and starts it.
    Nothing running is touched before steps 1-5 succeed. Running it again with
    another package upgrades the agent (the identity, the spool of samples not yet
    sent and the logs are kept); with the package already installed, it only checks
    that the task is there and stops (exit code 0), so that a startup script may run
    it at every boot. -Force installs again.

    Never prompts. -Silent: nothing on the console either (for deployment tools);
    the log file and the exit code tell what happened.

    Exit codes: 0 installed (or removed); 10 no suitable Python; 11 the package is
    incomplete or altered (SHA256SUMS); 12 no configuration; 13 pip failed;
    14 the configuration was refused by check-config; 15 the scheduled task could not
    be registered or started; 1 any other error (see the log).

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
    tests (no Windows machine, no PowerShell): tests/bundle/ parses it with a
    PowerShell grammar and checks the commands it runs; tests/agent/test_service_files.py
    checks the task XML.

.PARAMETER ConfigFile
    The configuration to install instead of the package's agent.toml (a pilot
    laptop's own file, say). On an upgrade without either, the installed one is kept.

.PARAMETER Python
    python.exe of the CPython to build the agent's environment from. Default: the
    newest version the package supports among those registered for all users.

.PARAMETER Silent
    Write nothing to the console (the log file still gets everything).

.PARAMETER Force
    Install again even when this package is the one installed.

.PARAMETER Uninstall
    Stop and unregister the task and delete C:\Program Files\Lordi\agent. Keeps
    C:\ProgramData\Lordi (configuration, identity, spool, logs).

.EXAMPLE
    powershell.exe -NoProfile -ExecutionPolicy Bypass -File \\server\deploy\lordi\install.ps1 -Silent
#>
[CmdletBinding()]
param(
    [string]$ConfigFile,
    [string]$Python,
    [switch]$Silent,
    [switch]$Force,
    [switch]$Uninstall
)

$ErrorActionPreference = "Stop"
Set-StrictMode -Version Latest

# A 32-bit PowerShell on 64-bit Windows (a 32-bit deployment agent starting
# "powershell.exe") sees the 32-bit registry, where 64-bit Pythons are not listed:
# run again in the 64-bit one.
if ([Environment]::Is64BitOperatingSystem -and -not [Environment]::Is64BitProcess) {
    $native = Join-Path $env:WINDIR "sysnative\WindowsPowerShell\v1.0\powershell.exe"
    $forward = @()
    foreach ($name in $PSBoundParameters.Keys) {
        $value = $PSBoundParameters[$name]
        if ($value -is [System.Management.Automation.SwitchParameter]) {
            if ($value.IsPresent) { $forward += "-$name" }
        } else {
            $forward += "-$name"
            $forward += [string]$value
        }
    }
    & $native -NoProfile -ExecutionPolicy Bypass -File $PSCommandPath @forward
    exit $LASTEXITCODE
}

# These paths are also written in lordi-agent-task.xml: change both together.
$InstallDir = "C:\Program Files\Lordi\agent"
$Venv = Join-Path $InstallDir "venv"
$NewVenv = Join-Path $InstallDir "venv.new"
$OldVenv = Join-Path $InstallDir "venv.old"
$DataDir = "C:\ProgramData\Lordi"
$LogDir = Join-Path $DataDir "logs"
$InstallLog = Join-Path $LogDir "install.log"
$Config = Join-Path $DataDir "agent.toml"
$NewConfig = Join-Path $DataDir "agent.toml.new"
$CaFile = Join-Path $DataDir "ca.crt"
$Installed = Join-Path $DataDir "installed-package.sha256"  # SHA256SUMS's hash, once installed
$TaskPath = "\Lordi\"
$TaskName = "LordiAgent"
$Package = $PSScriptRoot
$TaskXml = Join-Path $Package "lordi-agent-task.xml"
$WheelDir = Join-Path $Package "wheels"

$SystemSid = "S-1-5-18"          # NT AUTHORITY\SYSTEM (French: AUTORITE NT\Systeme)
$AdministratorsSid = "S-1-5-32-544"  # BUILTIN\Administrators (Administrateurs)

$ExitNoPython = 10
$ExitBadPackage = 11
$ExitNoConfig = 12
$ExitPip = 13
$ExitConfigRefused = 14
$ExitTask = 15

function Write-Log([string]$Message) {
    if (-not $Silent) { Write-Host $Message }
    if (Test-Path -LiteralPath $LogDir -PathType Container) {
        $line = "{0} {1}" -f (Get-Date -Format "yyyy-MM-dd HH:mm:ss"), $Message
        Add-Content -LiteralPath $InstallLog -Value $line -Encoding UTF8
    }
}

function Stop-Install([int]$Code, [string]$Message) {
    Write-Log "error: $Message (exit code $Code)"
    exit $Code
}

trap {
    Write-Log "error: $_ (exit code 1)"
    exit 1
}

function Invoke-Native([string]$Exe, [string[]]$Arguments) {
    # Windows PowerShell 5.1 turns a program's stderr lines into errors, which "Stop"
    # makes fatal: both streams go to the log as text, and the exit code decides.
    $saved = $ErrorActionPreference
    $ErrorActionPreference = "Continue"
    try {
        & $Exe @Arguments 2>&1 | ForEach-Object { Write-Log "  $_" }
    } finally {
        $ErrorActionPreference = $saved
    }
    return $LASTEXITCODE
}

function Stop-Agent {
    $existing = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue
    if ($null -eq $existing) { return }
    Write-Log "Stopping the running agent"
    # Disabled first, so that the 5-minute trigger cannot start it again meanwhile;
    # registering the task enables it again.
    Disable-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName | Out-Null
    Stop-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
    for ($i = 0; $i -lt 30; $i++) {
        if ((Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName).State -ne "Running") { break }
        Start-Sleep -Seconds 1
    }
}

function Find-Python([string[]]$Versions) {
    # PEP 514: the python.org installer registers an all-users Python in HKLM; the
    # 64-bit view, whichever PowerShell reads it.
    $hklm = [Microsoft.Win32.RegistryKey]::OpenBaseKey(
        [Microsoft.Win32.RegistryHive]::LocalMachine, [Microsoft.Win32.RegistryView]::Registry64)
    foreach ($version in $Versions) {
        $key = $hklm.OpenSubKey("SOFTWARE\Python\PythonCore\$version\InstallPath")
        if ($null -eq $key) { continue }
        $exe = $key.GetValue("ExecutablePath")
        if (-not $exe) {
            $folder = $key.GetValue("")
            if ($folder) { $exe = Join-Path $folder "python.exe" }
        }
        $key.Close()
        if ($exe -and (Test-Path -LiteralPath $exe -PathType Leaf)) { return $exe }
    }
    return $null
}

# --- Removal -------------------------------------------------------------------
if ($Uninstall) {
    Stop-Agent
    if (Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue) {
        Unregister-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -Confirm:$false
    }
    if (Test-Path -LiteralPath $InstallDir) {
        Remove-Item -LiteralPath $InstallDir -Recurse -Force
    }
    if (Test-Path -LiteralPath $Installed) { Remove-Item -LiteralPath $Installed -Force }
    Write-Log "Agent removed; $DataDir kept (configuration, identity, spool, logs)."
    exit 0
}

# --- 1. Data folder: SYSTEM and Administrators only, inheritance from C:\ProgramData
#    removed (it lets every user read and create files). Done before any file is
#    copied, so the secrets are never readable by others, not even for a moment.
New-Item -ItemType Directory -Force -Path $DataDir, $LogDir | Out-Null
& icacls.exe $DataDir /inheritance:r /grant:r "*${SystemSid}:(OI)(CI)F" "*${AdministratorsSid}:(OI)(CI)F" | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls failed on $DataDir (exit code $LASTEXITCODE)" }
& icacls.exe $DataDir /setowner "*$AdministratorsSid" /T /C /Q | Out-Null
if ($LASTEXITCODE -ne 0) { throw "icacls /setowner failed on $DataDir (exit code $LASTEXITCODE)" }
# Files already there (upgrade, or an MSI's package folder) get the folder's permissions.
& icacls.exe "$DataDir\*" /reset /T /C /Q | Out-Null
Write-Log "Installing the Lordi agent from $Package"

# --- 2. The package, whole and unaltered.
$SumsFile = Join-Path $Package "SHA256SUMS"
$BundleFile = Join-Path $Package "bundle.json"
foreach ($needed in @($SumsFile, $BundleFile, $TaskXml)) {
    if (-not (Test-Path -LiteralPath $needed -PathType Leaf)) {
        Stop-Install $ExitBadPackage "$needed not found: run this script from the package folder"
    }
}
$packageId = (Get-FileHash -LiteralPath $SumsFile -Algorithm SHA256).Hash
$task = Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue
if (-not $Force -and $null -ne $task -and (Test-Path -LiteralPath $Installed) -and
        (Test-Path -LiteralPath (Join-Path $Venv "Scripts\pythonw.exe")) -and
        ([string](Get-Content -LiteralPath $Installed -Raw)).Trim() -eq $packageId) {
    Write-Log "This package is already installed (task $($task.State)); nothing to do (-Force reinstalls)."
    exit 0
}
$checked = 0
foreach ($line in Get-Content -LiteralPath $SumsFile) {
    if (-not $line.Trim()) { continue }
    if ($line -notmatch '^([0-9a-fA-F]{64}) [ *](.+)$') {
        Stop-Install $ExitBadPackage "SHA256SUMS: unreadable line '$line'"
    }
    $expected = $Matches[1]
    $file = Join-Path $Package ($Matches[2] -replace '/', '\')
    if (-not (Test-Path -LiteralPath $file -PathType Leaf)) {
        Stop-Install $ExitBadPackage "$file is missing from the package"
    }
    if ((Get-FileHash -LiteralPath $file -Algorithm SHA256).Hash -ne $expected) {
        Stop-Install $ExitBadPackage "$file does not match SHA256SUMS (altered or partly copied)"
    }
    $checked++
}
$bundle = Get-Content -LiteralPath $BundleFile -Raw -Encoding UTF8 | ConvertFrom-Json
Write-Log "Package: lordi-telemetry $($bundle.version), $checked files checked"

# --- 3. A Python the package has wheels for.
$versions = @($bundle.pythons | Sort-Object { [version]$_ } -Descending)
if (-not $Python) { $Python = Find-Python $versions }
if (-not $Python -or -not (Test-Path -LiteralPath $Python -PathType Leaf)) {
    Stop-Install $ExitNoPython ("no 64-bit Python " + ($versions -join ", ") +
        " installed for all users (the region's software catalogue, or -Python)")
}
$probe = & $Python -I -c "import struct, sys; print('%d.%d %d' % (sys.version_info[0], sys.version_info[1], struct.calcsize('P') * 8))"
$found, $bits = "$probe".Trim() -split " "
if ($versions -notcontains $found -or $bits -ne "64") {
    Stop-Install $ExitNoPython "$Python is Python $found ($bits-bit); the package needs 64-bit $($versions -join ', ')"
}
Write-Log "Python $found at $Python"

# --- 4. The agent's environment, built beside the running one.
if (Test-Path -LiteralPath $NewVenv) { Remove-Item -LiteralPath $NewVenv -Recurse -Force }
New-Item -ItemType Directory -Force -Path $InstallDir | Out-Null
if ((Invoke-Native $Python @("-I", "-m", "venv", "--without-pip", $NewVenv)) -ne 0) {
    Stop-Install $ExitPip "python -m venv failed"
}
$NewPython = Join-Path $NewVenv "Scripts\python.exe"
# pip runs from the package's own wheel (python pip.whl/pip), so the environment needs
# no pip of its own; no machine pip.ini, PIP_* variable or index can add a source.
foreach ($variable in @(Get-ChildItem Env: | Where-Object { $_.Name -like "PIP_*" })) {
    Remove-Item -LiteralPath "Env:$($variable.Name)"
}
$env:PIP_CONFIG_FILE = "nul"  # os.devnull: pip then reads no configuration file
$PipMain = (Join-Path $Package ($bundle.pip_wheels.$found -replace '/', '\')) + "\pip"
$ProjectWheel = Join-Path $Package ($bundle.project_wheel -replace '/', '\')
$pipArgs = @(
    "-I", $PipMain, "install", "--no-index", "--find-links", $WheelDir,
    "--no-cache-dir", "--disable-pip-version-check", "--no-warn-script-location",
    $ProjectWheel
)
if ((Invoke-Native $NewPython $pipArgs) -ne 0) {
    Remove-Item -LiteralPath $NewVenv -Recurse -Force
    Stop-Install $ExitPip "pip install from $WheelDir failed"
}
if ((Invoke-Native $NewPython @("-I", "-c", "import agent.cli, paho.mqtt.client, psutil")) -ne 0) {
    Stop-Install $ExitPip "the agent does not import in $NewVenv"
}

# --- 5. CA and configuration, checked by the new agent before anything is replaced.
$PackageCa = Join-Path $Package "ca.crt"
if (Test-Path -LiteralPath $PackageCa -PathType Leaf) {
    # Copy (not move): the new file inherits the folder's restricted permissions.
    Copy-Item -LiteralPath $PackageCa -Destination $CaFile -Force
}
if (-not $ConfigFile) {
    $packaged = Join-Path $Package "agent.toml"
    if (Test-Path -LiteralPath $packaged -PathType Leaf) { $ConfigFile = $packaged }
}
if ($ConfigFile) {
    Copy-Item -LiteralPath $ConfigFile -Destination $NewConfig -Force
    $toCheck = $NewConfig
} elseif (Test-Path -LiteralPath $Config -PathType Leaf) {
    $toCheck = $Config
} else {
    Stop-Install $ExitNoConfig "no configuration: none in the package, none installed, no -ConfigFile"
}
if ((Invoke-Native $NewPython @("-I", "-m", "agent.cli", "--config", $toCheck, "check-config")) -ne 0) {
    if ($toCheck -eq $NewConfig) { Remove-Item -LiteralPath $NewConfig -Force }
    Stop-Install $ExitConfigRefused "the configuration $ConfigFile is not valid (see above)"
}

# --- 6. Swap: stop the old agent (Windows locks the files in use), move the new
#    environment into place, start the task.
Stop-Agent
if (Test-Path -LiteralPath $OldVenv) { Remove-Item -LiteralPath $OldVenv -Recurse -Force }
try {
    if (Test-Path -LiteralPath $Venv) { Move-Item -LiteralPath $Venv -Destination $OldVenv }
    Move-Item -LiteralPath $NewVenv -Destination $Venv
} catch {
    # A file of the old agent still in use: put it back as it was and say so.
    if (-not (Test-Path -LiteralPath $Venv) -and (Test-Path -LiteralPath $OldVenv)) {
        Move-Item -LiteralPath $OldVenv -Destination $Venv
    }
    if (Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -ErrorAction SilentlyContinue) {
        Enable-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName | Out-Null
    }
    Stop-Install 1 "could not replace $Venv ($_); the previous agent is left in place"
}
if ($toCheck -eq $NewConfig) { Move-Item -LiteralPath $NewConfig -Destination $Config -Force }
if (Test-Path -LiteralPath $OldVenv) {
    Remove-Item -LiteralPath $OldVenv -Recurse -Force -ErrorAction SilentlyContinue
}

# The XML is ASCII, read as one string.
$xml = Get-Content -LiteralPath $TaskXml -Raw -Encoding UTF8
try {
    Register-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName -Xml $xml -Force | Out-Null
    Start-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName
} catch {
    Stop-Install $ExitTask "scheduled task: $_"
}
Set-Content -LiteralPath $Installed -Value $packageId -Encoding ASCII
Start-Sleep -Seconds 5
$info = Get-ScheduledTaskInfo -TaskPath $TaskPath -TaskName $TaskName
$state = (Get-ScheduledTask -TaskPath $TaskPath -TaskName $TaskName).State
Write-Log "Task $TaskPath$TaskName is $state (last result $($info.LastTaskResult)). Log: $LogDir\agent.log"
exit 0
