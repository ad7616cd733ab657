"""Single sign-on as a protocol: the token verifier, reason codes, SSO key material, page ids, the debugger.

Pure functions of their inputs: nothing here reads or writes storage.
"""
