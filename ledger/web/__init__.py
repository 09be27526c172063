"""The timeline web page: server-rendered HTML over the same service as the API."""
