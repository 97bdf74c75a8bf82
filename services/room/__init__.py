"""The incident room: web pages in the API process that show each brand's health, follow an
incident to recovery and list the customers at risk.

``model`` is the pure read model (records in, page data out), ``consumer`` the thin Kafka shell that
feeds it, ``charts`` draws the SVG charts, ``auth`` the login session, ``pages`` the aiohttp routes
and templates.
"""
