"""Sub-commands of the ``devnas`` command line (see ``optuna_devnas.cli``)."""
