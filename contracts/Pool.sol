// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import "./IERC20.sol";

/// @title A constant-product pool of two tokens (x * y = k) with a swap fee.
/// @notice Liquidity comes only from the platform (the owner). A swap pulls `amountIn` of
///         `tokenIn` from the caller (who approved the pool) and sends the output to `to`;
///         it reverts below `minAmountOut`. Output (Uniswap V2's formula, rounded down):
///         out = in * (10000 - feeBps) * rOut / (rIn * 10000 + in * (10000 - feeBps)).
contract Pool {
    address public immutable token0;
    address public immutable token1;
    uint256 public immutable feeBps;
    address public immutable owner;
    uint256 public reserve0;
    uint256 public reserve1;

    event Swap(address indexed sender, address indexed tokenIn, uint256 amountIn, uint256 amountOut, address indexed to);
    event Sync(uint256 reserve0, uint256 reserve1);

    constructor(address token0_, address token1_, uint256 feeBps_) {
        require(token0_ != token1_ && token0_ != address(0) && token1_ != address(0), "Pool: bad tokens");
        require(feeBps_ < 10000, "Pool: fee too high");
        token0 = token0_;
        token1 = token1_;
        feeBps = feeBps_;
        owner = msg.sender;
    }

    function getReserves() external view returns (uint256, uint256) {
        return (reserve0, reserve1);
    }

    function getAmountOut(address tokenIn, uint256 amountIn) public view returns (uint256) {
        (uint256 reserveIn, uint256 reserveOut) = _reservesFor(tokenIn);
        require(amountIn > 0, "Pool: zero input");
        require(reserveIn > 0 && reserveOut > 0, "Pool: no liquidity");
        uint256 inWithFee = amountIn * (10000 - feeBps);
        return (inWithFee * reserveOut) / (reserveIn * 10000 + inWithFee);
    }

    function swap(address tokenIn, uint256 amountIn, uint256 minAmountOut, address to) external returns (uint256 amountOut) {
        amountOut = getAmountOut(tokenIn, amountIn);
        require(amountOut >= minAmountOut, "Pool: output below minimum");
        require(amountOut > 0, "Pool: zero output");
        address tokenOut = tokenIn == token0 ? token1 : token0;
        require(IERC20(tokenIn).transferFrom(msg.sender, address(this), amountIn), "Pool: transfer in failed");
        require(IERC20(tokenOut).transfer(to, amountOut), "Pool: transfer out failed");
        if (tokenIn == token0) {
            reserve0 += amountIn;
            reserve1 -= amountOut;
        } else {
            reserve1 += amountIn;
            reserve0 -= amountOut;
        }
        emit Swap(msg.sender, tokenIn, amountIn, amountOut, to);
        emit Sync(reserve0, reserve1);
    }

    /// @notice The owner adds liquidity (it approved the pool for both amounts).
    function addLiquidity(uint256 amount0, uint256 amount1) external {
        require(msg.sender == owner, "Pool: caller is not the owner");
        require(IERC20(token0).transferFrom(msg.sender, address(this), amount0), "Pool: transfer in failed");
        require(IERC20(token1).transferFrom(msg.sender, address(this), amount1), "Pool: transfer in failed");
        reserve0 += amount0;
        reserve1 += amount1;
        emit Sync(reserve0, reserve1);
    }

    function _reservesFor(address tokenIn) private view returns (uint256, uint256) {
        if (tokenIn == token0) return (reserve0, reserve1);
        if (tokenIn == token1) return (reserve1, reserve0);
        revert("Pool: unknown token");
    }
}
