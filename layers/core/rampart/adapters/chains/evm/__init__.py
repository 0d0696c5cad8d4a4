"""The EVM adapter (the ``base`` network): web3 over HTTP, the same code for the twin's world and a
real RPC URL. :class:`~rampart.adapters.chains.evm.client.EvmChain` is the port's implementation;
:mod:`~rampart.adapters.chains.evm.abi` reads the committed contract artifacts;
:mod:`~rampart.adapters.chains.evm.binding` binds a signed raw transaction to its blueprint."""
