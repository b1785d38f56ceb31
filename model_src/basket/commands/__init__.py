"""What each `basket` subcommand runs once its arguments are parsed (`basket.commands.cli`): one
module per group, each importing what it needs, so a command loads only its own libraries."""
