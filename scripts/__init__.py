"""The repository's scripts as one package, so that its programs share `scripts.lib`.

Run a Python program of it as a module from the repository's root, e.g.
`.tools/venv/bin/python -m scripts.checks.check_template template.yaml`.
"""
