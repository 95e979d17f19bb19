"""A simulator of Apple's side: the DEP service, the Business Manager portal, APNs, and (later) devices.

It behaves as Apple does, including where that is awkward for a client, because DEP clients from other
projects are pointed at it too. Pippin's product code never imports this package; the two meet only
over HTTP, exactly as Pippin and Apple do.
"""
