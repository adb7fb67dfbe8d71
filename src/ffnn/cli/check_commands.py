"""The commands that show back-propagation at work: ``ffnn gradcheck`` (against central
differences, with a time limit and progress) and ``ffnn explain`` (one step in an author's notation)."""


import os

import numpy as np

from .errors import CommandError, UsageError
from .shared import (
    OUTPUTS_FOR_LOSS,
    check_loss_and_output,
    load_model,
    model_loss,
    outputs_checked,
    write_reporting,
)


def _announce_gradcheck(net, X, T, loss, max_entries):
    """What the check will do and about how long it will take (four evaluations of J per entry), said
    before it starts, so that a long check is not silence."""
    import time

    arrays = [*net.parameters(), X]
    entries = sum(a.size if max_entries is None else min(a.size, max_entries) for a in arrays)
    net.loss(X, T, loss)  # the first evaluation warms up (imports, caches); time the next ones
    seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        net.loss(X, T, loss)
        seconds.append(time.perf_counter() - t0)
    estimate = 4 * entries * min(seconds)
    print(f"checking {entries:,} entries of the parameters and inputs by central differences (four evaluations "
          f"of J each): about {estimate:.0f} s" + ("; --max-entries N checks N per array, --max-seconds S stops "
                                                   "after S" if estimate > 30 else ""), flush=True)
    return estimate


def random_samples(net, loss, n, seed):
    """(X, T): ``n`` random inputs (standard normal) and targets the loss is defined on (one-hot
    classes for cross_entropy, 0/1 for binary_cross_entropy, else standard normal), from ``seed``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, net.sizes[0]))
    k = net.sizes[-1]
    if loss == "cross_entropy":
        T = np.eye(k)[rng.integers(0, k, size=n)]
    elif loss == "binary_cross_entropy":
        T = rng.integers(0, 2, size=(n, k)).astype(float)
    else:
        T = rng.normal(size=(n, k))
    return X, T


def cmd_gradcheck(args):
    import ffnn

    if args.model and args.sizes:
        raise UsageError("ffnn gradcheck: give a MODEL or --sizes, not both")
    if args.model:
        net = load_model(args.model)
        loss = model_loss(net, args.model, args.loss)
    elif args.sizes:
        if len(args.sizes) < 2:
            raise UsageError("ffnn gradcheck: --sizes needs at least an input and an output width")
        output = args.output or OUTPUTS_FOR_LOSS.get(args.loss, ("identity",))[0]
        check_loss_and_output("ffnn gradcheck", args.loss, output)
        try:
            net = ffnn.Network(args.sizes, args.activation, output, seed=args.seed)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"ffnn gradcheck: {exc}") from None
        loss = args.loss
    else:
        raise UsageError("ffnn gradcheck: give a MODEL file or --sizes such as 4,8,3")
    X, T = random_samples(net, loss, args.samples, args.seed)
    print(f"network {' -> '.join(map(str, net.sizes))} ({', '.join(a.name for a in net.activations)}), "
          f"loss {loss}, {args.samples} random samples")
    _announce_gradcheck(net, X, T, loss, args.max_entries or None)
    from .terminal import Status

    status = Status()

    def progress(done, total):
        status.show(lambda left: f"checked entries: {done:,} of {total:,} ({100 * done / total:.0f}%), "
                                 f"about {left(done / total):.0f} s left")

    try:
        report = ffnn.gradcheck(net, X, T, loss, max_entries=args.max_entries or None, seed=args.seed,
                                max_seconds=args.max_seconds, progress=progress)
    except ValueError as exc:
        raise CommandError(f"{'model file ' + repr(str(args.model)) if args.model else 'the network'}: {exc}") from None
    finally:
        status.close()
    print(report)
    if not report.complete and not report.passed and report.worst <= report.tolerance:
        raise CommandError(f"gradient check: --max-seconds {args.max_seconds:g} ran out before the first entry")
    if not report.passed:
        worst = max(report.errors, key=report.errors.get)
        raise CommandError(f"gradient check failed: {worst} has relative error {report.errors[worst]:.2e} "
                           f"> tolerance {report.tolerance:.0e}")
    return 0



# --- explain -------------------------------------------------------------------------------------

#: The network ``ffnn explain`` shows when given neither a MODEL nor --sizes.
DEFAULT_SIZES = [2, 3, 2]


def _explain_network(args, notation):
    """(network, loss name, where it came from) for the command's flags."""
    import ffnn

    from ..explanation import get_notation

    default_loss = get_notation(notation).loss_name or "mse"
    if args.model and args.sizes:
        raise UsageError("ffnn explain: give a MODEL or --sizes, not both")
    if args.model:
        if args.activation or args.output:
            raise UsageError("ffnn explain: --activation and --output are for a new network (--sizes), not a MODEL")
        net = load_model(args.model)
        return net, model_loss(net, args.model, args.loss or default_loss), f"model file {args.model}"
    sizes = args.sizes or DEFAULT_SIZES
    if len(sizes) < 2:
        raise UsageError("ffnn explain: --sizes needs at least an input and an output width")
    loss = args.loss or default_loss
    output = args.output or OUTPUTS_FOR_LOSS.get(loss, ("sigmoid",))[0]
    check_loss_and_output("ffnn explain", loss, output)
    try:
        net = ffnn.Network(sizes, args.activation or "sigmoid", output, seed=args.seed)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"ffnn explain: {exc}") from None
    return net, loss, f"a new network (seed {args.seed})"


def _explain_numbers(flag, values, width, what):
    if values is None:
        return None
    if len(values) != width:
        raise UsageError(f"ffnn explain: {flag} has {len(values)} values; the network's {what} has {width}")
    return np.asarray([values], dtype=np.float64)


def _explain_samples(args, net, loss):
    """(X, T, what they are) for the flags: given numbers, or random ones from --seed."""
    X0 = _explain_numbers("--input", args.input, net.sizes[0], "input layer")
    T0 = _explain_numbers("--target", args.target, net.sizes[-1], "output layer")
    n = 1 if X0 is not None else args.samples
    if args.sample is not None and args.sample >= n:
        raise UsageError(f"ffnn explain: --sample {args.sample} is not one of the {n} samples (0 to {n - 1})")
    X, T = random_samples(net, loss, n, args.seed)
    X = X if X0 is None else X0
    T = T if T0 is None else T0
    what = "given" if X0 is not None else f"random (seed {args.seed})"
    if args.sample is not None:
        X, T = X[args.sample:args.sample + 1], T[args.sample:args.sample + 1]
        what += f", sample {args.sample}"
    return X, T, what


def cmd_explain(args):
    import ffnn

    from .._files import atomic_write, printable

    if args.html:
        outputs_checked([("--html", args.html)], inputs=[("MODEL", args.model)])
        if os.path.exists(args.html) and not args.force:
            raise CommandError(f"output file {args.html!r} exists; pass --force to overwrite it")
    net, loss, source = _explain_network(args, args.notation)
    X, T, what = _explain_samples(args, net, loss)
    try:
        expl = ffnn.explain(net, X, T, loss, args.notation, learning_rate=args.lr)
    except ValueError as exc:
        raise CommandError(f"model file {str(args.model)!r}: {exc}" if args.model else str(exc)) from None
    print(f"{source}; inputs {what}")
    print(expl.text(width=args.width))
    if args.html:
        text = expl.html(net)
        write_reporting(f"--html {args.html!r}", atomic_write, args.html, text.encode("utf-8"), "--html")
        print(f"HTML page written to {printable(args.html)}")
    return 0
