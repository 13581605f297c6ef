"""Random image warps for the equivariance loss (first-order-model's ``Transform``, used by OSFV).

The keypoint detector must be equivariant: keypoints found on a warped frame, mapped back
through the warp, must land on the keypoints of the original frame. The warp is a random
affine map near the identity plus a thin-plate spline (TPS) on a regular grid of control
points, both per batch element.

Coordinates are normalised to [-1, 1], x (width) first, with -1 and +1 at the *centres* of
the first and last pixels, so ``F.grid_sample(..., align_corners=True)`` reads them exactly
and pixel ``(u, v)`` of a W×H image is ``(2u/(W-1) - 1, 2v/(H-1) - 1)`` — the convention of
:func:`eat.models.keypoints.make_coordinate_grid`, in which the keypoint detector reports its
keypoints, so the warp and the detector agree exactly (first-order-model sampled with
``align_corners=False`` here, a sub-pixel scale mismatch).

Differences from first-order-model's TPS (our own formulation): the radial basis is the
standard U(r) = r² log r on the Euclidean distance, and each axis has its own spline
coefficients (first-order-model uses the L1 distance and adds one coefficient to x and y).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from eat.models.keypoints import make_coordinate_grid


def _tps_basis(coords: torch.Tensor, control: torch.Tensor) -> torch.Tensor:
    """U(r) = r² log r between (B, N, 2) points and (M, 2) control points → (B, N, M); U(0) = 0."""
    r2 = (coords.unsqueeze(2) - control.view(1, 1, -1, 2)).pow(2).sum(-1)
    return 0.5 * r2 * torch.log(r2 + 1e-12)


class RandomWarp:
    """A batch of random warps T_b: [-1, 1]² → [-1, 1]², T(p) = A p + t + Σ_m w_m U(‖p − c_m‖).

    ``A, t`` = identity + N(0, affine_sigma²) per entry (θ of shape (B, 2, 3)); the control
    points c_m form a ``tps_points`` × ``tps_points`` grid over [-1, 1]², and the coefficients
    w (B, tps_points², 2) are N(0, tps_sigma²). All noise comes from ``generator`` (CPU), so a
    seeded generator gives the same warps. Sigmas 0 give the identity.

    :meth:`warp_image` resamples the original at T(p) for every output pixel p, so a feature at
    p in the warped image came from :meth:`warp_coordinates` (p) in the original.
    """

    def __init__(self, batch_size: int, affine_sigma: float, tps_sigma: float, tps_points: int,
                 generator: torch.Generator | None = None, device: torch.device | str | None = None):
        noise = torch.randn(batch_size, 2, 3, generator=generator) * affine_sigma
        self.theta = (torch.eye(2, 3).unsqueeze(0) + noise).to(device)                       # (B, 2, 3)
        self.control_points = make_coordinate_grid((tps_points, tps_points)).reshape(-1, 2).to(device)  # (M, 2)
        self.control_params = (torch.randn(batch_size, tps_points**2, 2, generator=generator)
                               * tps_sigma).to(device)                                       # (B, M, 2)
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, cfg, batch_size: int, generator: torch.Generator | None = None,
                    device: torch.device | str | None = None) -> RandomWarp:
        """Warps with the strengths of a :class:`eat.config.LatentTrainConfig`."""
        return cls(batch_size, cfg.affine_sigma, cfg.tps_sigma, cfg.tps_points, generator, device)

    def warp_coordinates(self, coords: torch.Tensor) -> torch.Tensor:
        """T(p) for (B, N, 2) normalised (x, y) points → (B, N, 2), on the points' device and dtype."""
        theta = self.theta.to(coords)            # follow the points' dtype and device
        out = coords @ theta[:, :, :2].transpose(1, 2) + theta[:, :, 2].unsqueeze(1)
        basis = _tps_basis(coords, self.control_points.to(coords))
        return out + basis @ self.control_params.to(coords)

    def warp_image(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) → (B, C, H, W): output pixel p = image at T(p) (bilinear, border padding)."""
        b, _, h, w = image.shape
        grid = make_coordinate_grid((h, w), image.device, image.dtype).reshape(1, h * w, 2).expand(b, -1, -1)
        grid = self.warp_coordinates(grid).reshape(b, h, w, 2)
        return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
