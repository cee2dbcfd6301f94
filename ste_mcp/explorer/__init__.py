"""STE exploration: imagine -> trial -> reflect, with short-term (episode) and long-term (store) memory.

The loop is ``scheduler.Explorer`` (built with ``Explorer.from_app``); one episode is ``episode.run_episode``.
Import from the module that defines a name, so that reading the settings stays cheap.
"""
