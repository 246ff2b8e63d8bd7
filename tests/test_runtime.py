import platform

import pytest

from stages.runtime import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is a glibc interface")
def test_malloc_keeps_freed_blocks_on_glibc():
    assert keep_freed_memory() is True
    assert keep_freed_memory() is True  # idempotent: cached, safe to call from every stage
