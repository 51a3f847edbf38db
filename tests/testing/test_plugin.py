"""The pytest plugin as a project of a user's own meets it: a test file using the
`shard_fleet` fixture, run by pytest in a process of its own (pytester)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(300)


def test_a_marked_test_gets_its_fleet_and_the_next_finds_it_reset(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_mine="""
        import httpx
        import pytest

        URLS = []

        @pytest.mark.shards(count=3, latency="fixed:20", seed=1)
        def test_a_fault(shard_fleet):
            URLS.append(shard_fleet.urls)
            assert len(shard_fleet.urls) == 3
            shard_fleet.inject(1, "error", status=503)
            shard_fleet.set_latency(2, "fixed:1")
            assert httpx.get(shard_fleet.urls[1] + "/data").status_code == 503

        @pytest.mark.shards(count=3, latency="fixed:20", seed=1)
        def test_after_it(shard_fleet):
            assert shard_fleet.urls == URLS[0]  # the session's fleet of this configuration
            assert httpx.get(shard_fleet.urls[1] + "/data").status_code == 200
            assert httpx.get(shard_fleet.urls[2] + "/data").json()["delay_ms"] == 20
            assert shard_fleet.received()[1].calls == 1

        def test_the_default_fleet(shard_fleet):
            assert len(shard_fleet.urls) == 2
            assert shard_fleet.urls != URLS[0]
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:randomly", "--shard-fleet-count", "2")
    result.assert_outcomes(passed=3)


@pytest.mark.parametrize(
    ("marker", "said"),
    [
        (
            'count=2, latncy="fixed:1"',
            "*@pytest.mark.shards has no latncy; it takes count, latency*",
        ),
        ("3", "*@pytest.mark.shards takes keywords only*"),
        (
            'capacity={"workers": 2}',
            "*@pytest.mark.shards(capacity=...) takes a string or a number*",
        ),
    ],
)
def test_a_marker_it_cannot_read_stops_the_run_naming_why(
    pytester: pytest.Pytester, marker: str, said: str
) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.shards({marker})
        def test_it(shard_fleet):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([said])


def test_a_fleet_that_cannot_be_is_a_usage_error_naming_the_field(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.shards(count=2, latency="lognormal:50,5")
        def test_it(shard_fleet):
            pass
        """
    )
    result = pytester.runpytest_subprocess()
    assert result.ret != pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*@pytest.mark.shards: latency.p99_ms:*"])


def test_parallel_workers_get_fleets_on_ports_of_their_own(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        **{
            f"test_worker_{number}": f"""
            def test_it(shard_fleet, worker_id):
                assert worker_id.startswith("gw")
                shard_fleet.inject("all", "latency", latency="fixed:{number}")
                open("ports-{number}", "w").write(",".join([worker_id, *shard_fleet.urls]))
            """
            for number in range(2)
        }
    )
    result = pytester.runpytest_subprocess(
        "-n", "2", "--dist", "loadfile", "-p", "no:randomly", "--shard-fleet-count", "3"
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    first, second = ((pytester.path / f"ports-{n}").read_text().split(",") for n in range(2))
    assert first[0] != second[0]  # one file to each worker
    assert not set(first[1:]) & set(second[1:])


def test_a_shard_that_cannot_start_fails_the_test_saying_why(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real start-up failure in one shard process, through its site hook.
    hook = pytester.mkdir("hook")
    (hook / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if os.environ.get('SHARD_ID') == '1':\n"
        "    print('simulated start-up failure', file=sys.stderr, flush=True)\n"
        "    os._exit(3)\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    pytester.makepyfile(
        """
        def test_it(shard_fleet):
            pass
        """
    )
    result = pytester.runpytest_subprocess("--shard-fleet-count", "2")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*shard_fleet: the shards did not start: shard-01 exited with code 3: "
         "simulated start-up failure (logs: *"]
    )  # fmt: skip
    assert "Traceback" not in result.stdout.str()
