"""The platform-neutral service: HTTP routes, queue events, response models, OpenAPI.

``aws.handler`` (Lambda) and ``local.server`` (``sweep serve``) both run it; it imports
neither of them.
"""
