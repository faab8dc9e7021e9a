"""`lordi bundle windows`: an offline package of the agent for a deployment share.

`wheels` builds the project's wheel, downloads the dependencies' wheels for the target
platform and Pythons, and checks that they are complete; `build` lays out the package
(install script, task definition, school configuration, manifests); `msi` wraps it in
an MSI with msitools' wixl and checks the tables with msiinfo; `cli` is the command,
which imports the rest only when it runs (`packaging`, the `bundle` extra, is not
needed by the other `lordi` commands).
"""

from pathlib import Path

DEFAULT_PYTHONS = ("3.11", "3.12", "3.13")
WINDOWS_PLATFORMS = ("win_amd64",)
SOURCE = Path(__file__).resolve().parents[2]  # the checkout this command runs from
CA_ON_LAPTOP = r"C:\ProgramData\Lordi\ca.crt"  # where install.ps1 puts the package's ca.crt
