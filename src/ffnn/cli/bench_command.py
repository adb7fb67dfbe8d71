"""``ffnn bench``: the CPU comparison, or with ``--gpu`` the CUDA one."""




from .errors import UsageError
from .shared import outputs_checked


def cmd_bench(args):
    outputs_checked([("--json", args.json)], force=args.force)
    if args.gpu:
        given = [f for f, v in (("--network", args.network), ("--dtype", args.dtype),
                                ("--no-first-fit", args.no_first_fit)) if v]
        if given:
            raise UsageError(f"ffnn bench --gpu: {given[0]} is for the CPU bench (without --gpu)")
        from .bench_gpu import main as gpu_main

        return gpu_main(quick=args.quick, json_path=args.json)
    from .bench import main as bench_main

    def flat(lists):
        return list(dict.fromkeys(x for part in lists for x in part)) if lists else None

    import functools

    return bench_main(quick=args.quick, json_path=args.json, n_samples=args.samples, networks=flat(args.network),
                      dtypes=flat(args.dtype), first_fit=not args.no_first_fit,
                      log=functools.partial(print, flush=True))  # each line as it comes, on a pipe too
