"""The staff web view (Datasette over the store) and the one-click unsubscribe pages.

``queries.metadata`` describes the store to Datasette: titles, canned queries, hidden
tables, and who may see what. ``plugin.TendermatchPlugin`` adds the unsubscribe pages and
the login redirect. The worker's ``serve`` wires both to a config; nothing here reads one.
"""
