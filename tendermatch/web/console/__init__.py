"""The staff console: server-rendered pages in Danish (English by a switch) over the store,
with personal accounts, sessions, CSRF-protected forms, an access log and CSV/Excel exports.

``app.ConsoleApp`` sits in front of Datasette in the same ASGI process (worker/serve.py
wires them): it answers its own pages and the login, and lets only logged-in staff through
to Datasette (ad-hoc SQL). The unsubscribe pages stay public.
"""
