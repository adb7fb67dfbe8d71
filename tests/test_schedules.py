import math

import pytest

from ffnn import schedules as S


def _values(sched, steps, per_epoch=10, total=100):
    sched.setup(per_epoch, total)
    return [sched(t) for t in steps]


def test_constant():
    assert _values(S.Constant(), [0, 5, 99]) == [1.0, 1.0, 1.0]


def test_step_decay_every_k_epochs():
    assert _values(S.StepDecay(every=2, gamma=0.5), [0, 19, 20, 39, 40, 99]) == [1, 1, 0.5, 0.5, 0.25, 0.0625]


def test_exponential_per_epoch():
    v = _values(S.Exponential(0.9), [0, 10, 25])
    assert v == [1.0, pytest.approx(0.9), pytest.approx(0.9**2.5)]


def test_inverse_scaling():
    assert _values(S.InverseScaling(0.5), [0, 3, 99]) == [1.0, 0.5, pytest.approx(0.1)]


def test_cosine_with_warmup():
    c = S.Cosine(warmup=1, floor=0.1)
    v = _values(c, [0, 4, 9, 10, 55, 100])
    assert v[0] == pytest.approx(0.1) and v[1] == pytest.approx(0.5) and v[2] == pytest.approx(1.0)
    assert v[3] == pytest.approx(1.0)
    assert v[4] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 45 / 90)))
    assert v[5] == pytest.approx(0.1)


def test_reduce_on_plateau():
    r = S.ReduceOnPlateau(factor=0.5, patience=2, min_delta=0.0)
    seen = []
    for loss in [1.0, 0.9, 0.9, 0.9, 0.9, 0.8, 0.85, 0.85, 0.85]:
        r.epoch_end(loss)
        seen.append(r(0))
    assert seen == [1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25]
    state = r.state()
    r2 = S.ReduceOnPlateau(factor=0.5, patience=2, min_delta=0.0)
    r2.load_state(state)
    assert r2(0) == 0.25 and r2.best == 0.8


def test_names_callables_and_errors():
    assert isinstance(S.get_schedule(None), S.Constant)
    assert isinstance(S.get_schedule("cosine"), S.Cosine)
    f = lambda t: 0.5  # noqa: E731
    assert S.get_schedule(f) is f
    with pytest.raises(ValueError, match="unknown schedule 'linear'; known schedules: constant, step"):
        S.get_schedule("linear")
    with pytest.raises(TypeError):
        S.get_schedule(3)
    with pytest.raises(ValueError, match="gamma"):
        S.StepDecay(gamma=0)


def test_early_stopping_and_reduce_on_plateau_count_with_one_plateau():
    from ffnn.training import EarlyStopping

    values = [1.0, 0.9, 0.95, 0.9, 0.89, 0.92, 0.93, 0.94]
    stop, sched = EarlyStopping(patience=3, min_delta=0.005), S.ReduceOnPlateau(factor=0.5, patience=2, min_delta=0.005)
    plateau = S.Plateau(min_delta=0.005)
    waits = []
    for epoch, v in enumerate(values, start=1):
        stop.update(epoch, v)
        sched.epoch_end(v)
        plateau.update(v, epoch)
        waits.append(plateau.wait)
        assert stop.wait == plateau.wait and stop.best == plateau.best
    assert waits == [0, 0, 1, 2, 0, 1, 2, 3]  # 0.89 < 0.9 − 0.005 improves; 0.9 does not
    assert stop.should_stop and stop.best_epoch == 5
    assert sched.scale == 0.5  # reduced once, when wait passed its patience of 2
