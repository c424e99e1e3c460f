"""``tfsuite serve``: the embedded server with ``tensorflow_model_server``'s flags.

The flags are parsed by ``tfsuite.server.flags`` (TF Serving's names and syntax), not by
click options, so a script written for ``tensorflow_model_server`` runs unchanged.
"""

from __future__ import annotations

import click

from tfsuite.server.flags import flags_help, parse_flags, version_lines, version_requested

__all__ = ["serve"]

_EPILOG = """\b
Examples:
  tfsuite serve --port=8500 --rest_api_port=8501 --model_name=m --model_base_path=/models/m
  tfsuite serve --port 8500 --model_config_file=models.config --enable_batching \\
      --batching_parameters_file=batching_parameters.txt
  tfsuite serve --port=-1 --rest_api_port=-1 --model_base_path=/models/m   # ephemeral ports

\b
Ports: --rest_api_port=0 turns REST off and --port=0 turns TCP gRPC off (then
--grpc_socket_path is needed), as in TF Serving. -1 binds a free ephemeral port
(tfsuite extension); the bound ports are printed in TF Serving's start-up lines
"Running gRPC ModelServer at HOST:PORT ..." and "Exporting HTTP/REST API at:HOST:PORT ...".
SIGTERM / SIGINT: stop accepting, finish in-flight requests, exit 0.

\b
Batching: unlike TF Serving's asynchronous gRPC server, a request waiting in a
batch queue here holds one handler thread, so --grpc_max_threads (and
--rest_api_num_threads) cap how full a batch can get. With --enable_batching and
the flag not given, the default rises from 4 x cores to
(num_batch_threads + 1) x max_batch_size (at most 1024). Set the flag to at least
the number of concurrent clients if you set it yourself.

\b
REST timeout: after --rest_api_timeout_in_ms the client gets 504 "Deadline
Exceeded", but the inference already running is NOT cancelled (a TensorFlow call
cannot be interrupted): it finishes on its worker thread and its result is dropped.
Size the timeout for the slowest batch, not as a load shedder.

\b
--version prints the server and TensorFlow versions and exits.
"""


class _FlagsCommand(click.Command):
    """A click command whose help lists the TF Serving flags."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section(
            "Flags (tensorflow_model_server names; --flag=value or --flag value)"
        ):
            formatter.write_dl(flags_help())
        super().format_options(ctx, formatter)


@click.command(
    "serve",
    cls=_FlagsCommand,
    epilog=_EPILOG,
    context_settings={
        "ignore_unknown_options": True,
        "allow_extra_args": True,
        "help_option_names": ["-h", "--help"],
    },
)
@click.argument("flags", nargs=-1, type=click.UNPROCESSED)
def serve(flags: tuple[str, ...]) -> None:
    """Serve models with the embedded TF-Serving-compatible server (gRPC + REST).

    Accepts tensorflow_model_server's flags by their exact names.
    """
    if version_requested(flags):
        click.echo("\n".join(version_lines()))
        return
    options = parse_flags(flags)
    if options.model_config_file:
        # As TF Serving (server.cc): an unparseable config ends the process before anything
        # loads, with protobuf's line:column; here also before TensorFlow is imported.
        from tfsuite.serving_configs.model_config import read_model_config

        read_model_config(options.model_config_file)
    # Imported here: the app pulls in TensorFlow, the flag errors above should not wait for it.
    from tfsuite.server.app import ModelServer, print_announce

    ModelServer(options, announce=print_announce).run_forever()
