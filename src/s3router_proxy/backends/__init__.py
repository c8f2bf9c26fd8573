"""The backend leg: where a store lives and whose keys sign for it (`backend`), a request
re-signed and streamed to it and its answer relayed back (`forward`), and the general
copy engine between stores (`transfer`). Sits on the HTTP client, below `multi/`.
"""
