"""The v1 compatibility API: documents-worker v1's routes over the v2 operations.

Each v1 route is a thin adapter: it reads the request the way v1 did, submits
the v2 operation's job through the queue, and shapes the answer (and its errors)
the way v1 did. :func:`docworker.api.v1.install.install_v1` puts them on an
application.
"""
