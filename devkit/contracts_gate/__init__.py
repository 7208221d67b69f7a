"""The event contracts' gate: the committed JSON Schemas are current and compatible with history.

Project tooling, not part of the contracts every mission's integration installs: ``contracts/``
holds the models and their published schemas (``contracts/schemas/``); ``compat`` holds the
compatibility rule and its checker, ``cli`` the commands (``python -m devkit.contracts_gate
export|check|compat``; ``make contracts``, ``make contracts-check``).
"""
