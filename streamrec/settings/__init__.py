"""Settings sections, the flag/env plumbing and the generated docs page.

Every section lives here, in the core, so that :mod:`streamrec.config` composes them without
importing the packages that use them (the core never imports its children).
"""
