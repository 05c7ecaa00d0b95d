"""Large inputs: check ``g = u^T J`` along random directions, one per block, then bisect.

For a direction ``v`` the check compares

    analytic:   a = v . g
    numerical:  n = (phi(x + eps v) - phi(x - eps v)) / (2 eps),   phi = sum_i u_i . y_i

at two calls of ``fn`` per direction. If ``g`` is wrong by ``e``, then ``a - n = v . e``
(plus the round-off and truncation of ``n``).

**Weights.** Element k of input j has its own elementwise tolerance
``c_k = atol + rtol*|g_k| + noise``. The elements are shuffled and split into D blocks of
about ``S = n / D``; on its block a direction is

    w_k = s_k m_k / c_k,    v = w / ||w||,    s_k = +-1,  m_k uniform in [1, 2)

and its tolerance is ``t(v) = sqrt(sum_k v_k^2 c_k^2)``, the spread of ``v . e`` when every
element is off by its own tolerance with a random sign. So an element off by ``e_k = r c_k``
moves ``a - n`` by ``m_k r / ||w||`` against ``t(v) = sqrt(sum m^2) / ||w|| < 2 sqrt(S) / ||w||``:
it fails whenever ``r > 2 sqrt(S)``, whatever the size of ``g_k`` next to the other
elements. A backward 0.1% off (``r`` about ``0.001 / rtol = 100``) is caught up to S = 2,500.
Dividing by ``c_k`` is what makes this hold: unweighted, a small ``g_k`` among large ones is
lost below ``rtol |v . g|``. The magnitudes ``m_k`` keep two equal errors in one block from
cancelling exactly (with plain signs they would, half the time).

**Bisection.** ``a - n`` is linear in ``v``, so one half of a failing block's support
carries at least half of the mismatch. Keeping the half with the larger ``|a - n| / t``
down to one element takes about ``2 log2(S)`` more directions; that element is then
checked alone, as in elementwise mode, and reported.
"""

import numpy


def check_directions(checker, j, analytic, directions, fast):
    """Input j along ``directions`` tolerance-weighted random directions; the report, or None."""
    flat = analytic.ravel()
    blocks = min(directions, flat.size)
    how = (
        f"{'fast_mode: ' if fast else ''}{blocks} random directions over blocks of about "
        f"{-(-flat.size // blocks)} of the {flat.size} elements, each element weighted by its "
        "tolerance; the failing block bisected to one element"
    )
    not_finite = numpy.flatnonzero(~numpy.isfinite(flat))
    if not_finite.size:
        return _report_element(checker, j, analytic, int(not_finite[0]), how)
    scale = checker.atol + checker.rtol * numpy.abs(flat) + checker.noise
    order = checker.rng.permutation(flat.size)
    for block in numpy.array_split(order, blocks):
        weights = checker.rng.choice([-1.0, 1.0], block.size) * checker.rng.uniform(1.0, 2.0, block.size)
        weights /= scale[block]
        direction = numpy.zeros(flat.size)
        direction[block] = weights / numpy.linalg.norm(weights)
        if _ratio(checker, j, flat, scale, direction)[0] > 1:
            return _bisect(checker, j, analytic, scale, direction, block, how)
    return None


def _ratio(checker, j, flat, scale, direction):
    """``|a - n| / t(v)`` along ``direction`` (+inf if a value is not finite), with ``a``, ``n``, ``t``."""
    a = float(flat @ direction)
    n = checker.directional(j, direction.reshape(checker.inputs[j].shape))
    t = float(numpy.sqrt(((direction * scale) ** 2).sum()))
    if not (numpy.isfinite(a) and numpy.isfinite(n)):
        return numpy.inf, a, n, t
    return abs(a - n) / t, a, n, t


def _bisect(checker, j, analytic, scale, direction, support, how):
    """Halve the support of a failing direction, keeping the half that fails worse."""
    flat = analytic.ravel()
    _, block_a, block_n, block_t = _ratio(checker, j, flat, scale, direction)
    block_size = support.size
    while support.size > 1:
        halves = numpy.array_split(support, 2)
        ratios = []
        for half in halves:
            part = numpy.zeros(flat.size)
            part[half] = direction[half]
            ratios.append(_ratio(checker, j, flat, scale, part)[0])
        support = halves[int(numpy.argmax(ratios))]
    message = _report_element(checker, j, analytic, int(support[0]), how)
    if message is not None:
        return message
    label = checker.labels[j][0]
    return (
        f"gradcheck failed for {checker.name!r}: gradient mismatch with respect to {label} "
        f"(shape {tuple(checker.inputs[j].shape)}), spread over many elements\n"
        f"  a direction over {block_size} of its elements fails: analytical {block_a:.10g}, numerical "
        f"{block_n:.10g}, |difference| {abs(block_a - block_n):.3g} > {block_t:.3g}, but no single "
        "element of it is beyond its own tolerance\n" + checker.settings_line(how)
    )


def _report_element(checker, j, analytic, k, how):
    """Element k of input j alone, as in elementwise mode: its report if it fails, else None."""
    unit = numpy.zeros(analytic.size)
    unit[k] = 1.0
    numeric = checker.directional(j, unit.reshape(analytic.shape))
    value = float(analytic.flat[k])
    if not checker.excess(value, numeric) > 0:
        return None
    index = numpy.unravel_index(k, analytic.shape)
    return checker.report(j, index, value, numeric, how, all_zero=not analytic.any())
