"""Client of the sweep HTTP API, deployed (SigV4-signed) or `sweep serve` (unsigned).

Kept out of everything the Lambda handler imports: it is for the people who submit.
"""
