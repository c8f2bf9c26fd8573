"""The subcommands of `lakefs-s3-router` other than serving: `explain`, `check`, `migrate`
and `repair`, with the registry `cli` dispatches through and the parser helpers they share.

Built on everything below; nothing in the request path imports from here.
"""
