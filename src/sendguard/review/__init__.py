"""The review workflow: what happens to a hold after the relay stored it.

Signed links for the sender, decisions (release, cancel, recall, expiry) and
the background jobs that carry them out. Adapters over `sendguard.store`;
the checking core knows nothing of them.
"""
