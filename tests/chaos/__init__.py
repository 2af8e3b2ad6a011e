"""Gregor's Jepsen-style fault harness (issue 17, cluster part 3): see README.md."""
