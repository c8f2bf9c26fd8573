"""What spans several backends: one bucket split over stores and its merged listings, copies
across stores, mirrored writes with their journal, and one body teed to several stores.

Built on `backends/`; the request handler in `serving/` chooses these when a route needs them.
"""
