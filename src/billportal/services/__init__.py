"""The rules of billportal's data, over storage: the one billing write model, SSO and API keys, admins, audit.

Views, the CLI and the demo change data only through these services.
"""
