"""Request and response transformations of the proxy: templates, header and query rules, JSON
with exact numbers, SOAP and GraphQL bridges, and content negotiation. Pure functions: no HTTP
client, no AWS."""
