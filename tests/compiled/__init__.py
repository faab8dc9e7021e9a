"""The collector built as a server installs it: compiled hot modules, and their guard."""
