"""Programs run inside a VM-lab guest (see docs/vm-lab.md)."""
