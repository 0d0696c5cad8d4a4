// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import "./IERC20.sol";

/// @title What lets the platform take leftovers and make refunds from an ephemeral account.
/// @notice An ephemeral signs, in its blueprints, an approval of this contract for a token. After
///         the ramp (or after a failure) only the operator may move the approved token: `collect`
///         to the platform's treasury (leftovers, surpluses), `refund` back to the user. The
///         ephemeral's key is never needed again.
contract Sweeper {
    address public immutable operator;
    address public immutable treasury;

    event Collected(address indexed token, address indexed from, uint256 amount);
    event Refunded(address indexed token, address indexed from, address indexed to, uint256 amount);

    constructor(address operator_, address treasury_) {
        require(operator_ != address(0) && treasury_ != address(0), "Sweeper: zero address");
        operator = operator_;
        treasury = treasury_;
    }

    modifier onlyOperator() {
        require(msg.sender == operator, "Sweeper: caller is not the operator");
        _;
    }

    function collect(address token, address from, uint256 amount) external onlyOperator {
        require(IERC20(token).transferFrom(from, treasury, amount), "Sweeper: transfer failed");
        emit Collected(token, from, amount);
    }

    function refund(address token, address from, address to, uint256 amount) external onlyOperator {
        require(IERC20(token).transferFrom(from, to, amount), "Sweeper: transfer failed");
        emit Refunded(token, from, to, amount);
    }
}
