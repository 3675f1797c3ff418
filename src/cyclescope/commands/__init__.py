"""One module per subcommand, each with ``prepare_parser(parser)`` and ``run(args) -> int``."""
