"""What the ``minigrad`` command runs, built on the library beside it: ``cli`` (the command and
its table of subcommands), one module per subcommand (``demo``, ``experiment``, ``gradcheck``,
``graph``, ``train``), the HTML/Markdown ``report`` the demo writes, and ``experiments/`` (the
seed's BatchNorm claims as experiments, with the figures they draw). The app may import the
library and the engine; nothing in the library imports the app.
"""
