"""The S3 protocol as data: requests parsed into `S3Request`, operation names and their sets,
S3 XML errors, checksums, the XML toolkit and DeleteObjects documents.

Pure functions used by every stage above the HTTP layers; nothing here touches a socket.
"""
