"""install.ps1 uses no network: a static check on its syntax tree.

No PowerShell runs here (neither Windows PowerShell nor pwsh: Microsoft ships pwsh
from its own package repository, which this project's machines do not reach), so
the script is parsed with tree-sitter's PowerShell grammar instead: it must parse
without error, every command it runs must be one of a short list of local cmdlets,
its own functions or icacls, every program it starts must be the Python it checked
(or PowerShell itself), it names no .NET type that can reach a network, holds no URL,
and its only pip call is `install --no-index --find-links <package>\\wheels` with
pip's configuration files and PIP_* variables switched off.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import tree_sitter
import tree_sitter_powershell

from lordi.bundle import msi

SCRIPT = Path(__file__).resolve().parents[2] / "provisioning" / "agent" / "windows" / "install.ps1"
LOCAL_CMDLETS = {
    "Add-Content", "Copy-Item", "Disable-ScheduledTask", "Enable-ScheduledTask",
    "ForEach-Object", "Get-ChildItem", "Get-Content", "Get-Date", "Get-FileHash",
    "Get-ScheduledTask", "Get-ScheduledTaskInfo", "Join-Path", "Move-Item", "New-Item",
    "Out-Null", "Register-ScheduledTask", "Remove-Item", "Sort-Object", "Start-ScheduledTask",
    "Start-Sleep", "Stop-ScheduledTask", "Test-Path", "Unregister-ScheduledTask",
    "Where-Object", "Write-Host", "ConvertFrom-Json", "Set-StrictMode", "Set-Content",
    "icacls.exe",
}
NETWORK = {
    "Invoke-WebRequest", "Invoke-RestMethod", "Start-BitsTransfer", "iwr", "irm", "curl",
    "wget", "Install-Module", "Install-Package", "Save-Module", "Import-Module",
    "Install-PackageProvider", "New-PSDrive", "Invoke-Command", "Enter-PSSession",
    "bitsadmin.exe", "certutil.exe", "winget", "choco", "msiexec",
}
TYPES = {
    "[Environment]", "[System.Management.Automation.SwitchParameter]",
    "[Microsoft.Win32.RegistryKey]", "[Microsoft.Win32.RegistryHive]",
    "[Microsoft.Win32.RegistryView]", "[version]", "[int]", "[string]", "[string[]]",
    "[switch]",
}
# `& $X`: the programs it starts (PowerShell 64-bit, the checked Python, Invoke-Native's)
PROGRAMS = {"$native", "$Python", "$Exe"}


def parse(source: bytes) -> tree_sitter.Tree:
    parser = tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))
    return parser.parse(source)


def nodes(node: tree_sitter.Node) -> Iterator[tree_sitter.Node]:
    yield node
    for child in node.children:
        yield from nodes(child)


def text(node: tree_sitter.Node) -> str:
    return (node.text or b"").decode()


def syntax_errors(tree: tree_sitter.Tree) -> list[str]:
    return [f"line {n.start_point[0] + 1}: {text(n)[:60]!r}"
            for n in nodes(tree.root_node) if n.type == "ERROR" or n.is_missing]


def commands(tree: tree_sitter.Tree) -> list[tuple[str, list[str]]]:
    """(name or `& $variable`, argument texts) of every command in the script."""
    out = []
    for node in nodes(tree.root_node):
        if node.type != "command":
            continue
        name = next(c for c in node.children if c.type in ("command_name", "command_name_expr"))
        elements = next((c for c in node.children if c.type == "command_elements"), None)
        args = [text(c) for c in (elements.children if elements else [])
                if c.type != "command_argument_sep"]
        out.append((text(name), args))
    return out


def defined_functions(tree: tree_sitter.Tree) -> set[str]:
    return {text(n.child_by_field_name("function_name") or n.children[1])
            for n in nodes(tree.root_node) if n.type == "function_statement"}


def test_install_ps1_parses() -> None:
    source = SCRIPT.read_bytes()
    source.decode("ascii")  # Windows PowerShell 5.1 reads BOM-less scripts as ANSI
    assert syntax_errors(parse(source)) == []
    # the grammar does report a broken script
    assert syntax_errors(parse(b'if ($x -eq {\n  Write-Host "a"\n'))


def test_install_ps1_runs_only_local_commands() -> None:
    tree = parse(SCRIPT.read_bytes())
    functions = defined_functions(tree)
    assert {"Write-Log", "Stop-Install", "Invoke-Native", "Stop-Agent", "Find-Python"} <= functions
    for name, _args in commands(tree):
        assert name not in NETWORK
        if name.startswith("$"):
            assert name in PROGRAMS, name
        else:
            assert name in LOCAL_CMDLETS | functions, name
    types = {text(n) for n in nodes(tree.root_node) if n.type == "type_literal"}
    assert types <= TYPES, types - TYPES
    strings = [text(n) for n in nodes(tree.root_node) if n.type == "string_literal"]
    assert not [s for s in strings if re.search(r"(?i)://|\bhttps?\b|\\\\\w", s)]


def test_its_only_pip_call_is_offline() -> None:
    source = SCRIPT.read_text(encoding="ascii")
    tree = parse(source.encode())
    arrays = [text(n) for n in nodes(tree.root_node) if n.type == "array_expression"]
    installs = [a for a in arrays if '"install"' in a]
    assert len(installs) == 1
    words = re.findall(r'"([^"]*)"|(\$\w+)', installs[0])
    flat = [a or b for a, b in words]
    assert flat[:2] == ["-I", "$PipMain"]  # isolated mode, the package's own pip
    assert flat[2:6] == ["install", "--no-index", "--find-links", "$WheelDir"]
    assert not {"-i", "--index-url", "--extra-index-url", "--trusted-host"} & set(flat)
    assert '$WheelDir = Join-Path $Package "wheels"' in source
    assert "$Package = $PSScriptRoot" in source
    # pip's configuration files and the machine's PIP_* variables cannot add an index
    assert '$env:PIP_CONFIG_FILE = "nul"' in source
    assert re.search(r'\$_\.Name -like "PIP_\*"', source)
    assert source.index('PIP_CONFIG_FILE = "nul"') < source.index("Invoke-Native $NewPython $pipArgs")
    # the environment is made without pip (no ensurepip), pip comes from the package
    venv = [a for a in arrays if '"venv"' in a]
    assert len(venv) == 1 and '"--without-pip"' in venv[0]
    assert "$bundle.pip_wheels.$found" in source


def test_the_package_is_checked_before_anything_is_installed() -> None:
    source = SCRIPT.read_text(encoding="ascii")
    first_install = source.index("Invoke-Native $Python")
    assert source.index("Get-FileHash") < first_install
    assert source.index('Find-Python $versions') < first_install
    # the running agent is stopped only once the new one is ready and its config checked
    assert source.index('"check-config"') < source.index("\nStop-Agent\n")


def test_the_msi_commands_parse_and_stay_local() -> None:
    for name, _kind, _prop, target, _cond, _seq in msi.ACTIONS:
        if "-Command" not in target:
            continue
        inline = re.search(r'-Command "(.*)"$', target).group(1)  # type: ignore[union-attr]
        inline = inline.replace("[CommonAppDataFolder]", "C:\\ProgramData\\")
        tree = parse(inline.encode())
        assert syntax_errors(tree) == [], name
        assert {n for n, _ in commands(tree)} == {"New-Item", "Out-Null", "icacls.exe"}
