"""Every use of another library's internals, one small module per library, each with a contract
test (tests/unit/adapters/test_contracts.py) that fails loudly when a release changes what it relies on."""
