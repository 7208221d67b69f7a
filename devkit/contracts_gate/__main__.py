from devkit.contracts_gate.cli import app

app()
