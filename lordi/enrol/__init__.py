"""Self-enrolment on the server: enrolment secrets per school, laptop identities
created in the broker in batches, revocation (`lordi enrol ...`).

The agent's side and the protocol are in agent/enrol.py.
"""
