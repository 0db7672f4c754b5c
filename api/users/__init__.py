"""Users and authentication, built on fastapi-users.

* ``db``: the Piccolo user database adapter (``PiccoloUserDatabase``).
* ``manager``: ``UserManager`` (password policy, usernames, login by either).
* ``tokens``: access JWTs and rotating refresh tokens.
* ``api_keys``: ``X-API-Key`` keys.
* ``auth``: the fastapi-users instance and the ``current_*`` dependencies that
  ``api.deps.CurrentUser`` / ``SuperUser`` wrap.
* ``schemas``: request and response bodies.
"""
