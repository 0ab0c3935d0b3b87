from __future__ import annotations

import pytest

from runner.catalog.content import _code_is_templated


@pytest.mark.parametrize(
    ("argv", "flagged"),
    [
        (["sh", "-c", "ls {{ path }}"], True),
        (["/bin/bash", "-c", "ls {{ path }}"], True),
        (["bash", "{{ script }}"], True),
        (["python3", "-c", "import sys; print(sys.argv[1])", "{{ value }}"], False),  # an argument
        (["python3", "-c", "print('{{ value }}')"], True),
        (["perl", "-e", "{% if x %}1{% endif %}"], True),
        (["env", "LANG=C", "{{ program }}"], True),
        (["env", "LANG={{ lang }}", "ls"], False),
        (["xargs", "-0", "{{ cmd }}"], True),
        (["truncate", "--size", "0", "--", "{{ path }}"], False),  # not an interpreter
        (["sh", "/opt/scripts/fix.sh", "{{ host }}"], False),  # a fixed script, a templated argument
    ],
)
def test_code_handed_to_an_interpreter(argv: list[object], flagged: bool) -> None:
    assert _code_is_templated(argv) is flagged
