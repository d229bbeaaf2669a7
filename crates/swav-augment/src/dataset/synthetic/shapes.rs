//! The ten shape classes of the synthetic dataset, as inside-tests in a unit frame.
//!
//! Each shape fits in the unit disc (its extent is about 1). Classes are defined up to
//! rotation, reflection, scale and position, which the renderer randomises, so only the
//! silhouette tells them apart.

use serde::{Deserialize, Serialize};

/// A shape class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A filled disc.
    Disc,
    /// A filled square.
    Square,
    /// An equilateral triangle.
    Triangle,
    /// An annulus (a disc with a hole).
    Ring,
    /// A plus sign.
    Cross,
    /// A five-pointed star.
    Star,
    /// An elongated rectangle.
    Bar,
    /// Two bars joined at a right angle.
    LShape,
    /// A disc with an off-centre bite.
    Crescent,
    /// A shaft with a triangular head.
    Arrow,
}

const STAR_POINTS: usize = 5;
const STAR_INNER: f32 = 0.42;

impl Shape {
    /// Every shape, in label order.
    pub const ALL: [Shape; 10] = [
        Shape::Disc,
        Shape::Square,
        Shape::Triangle,
        Shape::Ring,
        Shape::Cross,
        Shape::Star,
        Shape::Bar,
        Shape::LShape,
        Shape::Crescent,
        Shape::Arrow,
    ];

    /// The class name (also the folder name when exported).
    pub fn name(self) -> &'static str {
        match self {
            Shape::Disc => "disc",
            Shape::Square => "square",
            Shape::Triangle => "triangle",
            Shape::Ring => "ring",
            Shape::Cross => "cross",
            Shape::Star => "star",
            Shape::Bar => "bar",
            Shape::LShape => "l_shape",
            Shape::Crescent => "crescent",
            Shape::Arrow => "arrow",
        }
    }

    /// Whether the point (`u`, `v`) of the shape's unit frame is inside the shape.
    pub fn contains(self, u: f32, v: f32) -> bool {
        let r2 = u * u + v * v;
        match self {
            Shape::Disc => r2 <= 0.9 * 0.9,
            Shape::Square => u.abs() <= 0.72 && v.abs() <= 0.72,
            Shape::Triangle => {
                // Three half-planes at distance 0.5 from the centre (circumradius 1).
                const C: f32 = 0.866_025_4;
                -v <= 0.5 && C * u + 0.5 * v <= 0.5 && -C * u + 0.5 * v <= 0.5
            }
            Shape::Ring => (0.58 * 0.58..=1.0).contains(&r2),
            Shape::Cross => {
                (u.abs() <= 0.3 && v.abs() <= 0.95) || (v.abs() <= 0.3 && u.abs() <= 0.95)
            }
            Shape::Star => star_contains(u, v),
            Shape::Bar => u.abs() <= 1.0 && v.abs() <= 0.3,
            Shape::LShape => {
                ((-0.8..=-0.25).contains(&u) && (-0.9..=0.9).contains(&v))
                    || ((-0.8..=0.8).contains(&u) && (0.35..=0.9).contains(&v))
            }
            Shape::Crescent => r2 <= 1.0 && (u - 0.5) * (u - 0.5) + v * v > 0.75 * 0.75,
            Shape::Arrow => {
                let shaft = (-1.0..=0.1).contains(&u) && v.abs() <= 0.2;
                let head = (0.1..=1.0).contains(&u) && v.abs() <= 0.7 * (1.0 - u) / 0.9;
                shaft || head
            }
        }
    }
}

/// Inside-test of a five-pointed star with outer radius 1 and inner radius [`STAR_INNER`].
fn star_contains(u: f32, v: f32) -> bool {
    let r = (u * u + v * v).sqrt();
    if r > 1.0 {
        return false;
    }
    if r <= STAR_INNER {
        return true;
    }
    let sector = std::f32::consts::TAU / STAR_POINTS as f32;
    // Angle from the nearest point's direction, folded into [0, sector / 2].
    let angle = v.atan2(u).rem_euclid(sector);
    let phi = (angle - sector / 2.0).abs();
    let phi = sector / 2.0 - phi;
    // Edge from the point P = (1, 0) to the inner vertex Q at angle sector / 2.
    let (qx, qy) = (
        STAR_INNER * (sector / 2.0).cos(),
        STAR_INNER * (sector / 2.0).sin(),
    );
    let (x, y) = (r * phi.cos(), r * phi.sin());
    // Inside when X is on the origin's side of the line PQ.
    let cross = |ax: f32, ay: f32| (qx - 1.0) * ay - (qy) * (ax - 1.0);
    cross(x, y).signum() == cross(0.0, 0.0).signum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fraction of a 200 x 200 grid over [-1, 1]^2 inside the shape.
    fn coverage(shape: Shape) -> f32 {
        let n = 200;
        let mut inside = 0;
        for i in 0..n {
            for j in 0..n {
                let u = -1.0 + 2.0 * (i as f32 + 0.5) / n as f32;
                let v = -1.0 + 2.0 * (j as f32 + 0.5) / n as f32;
                inside += shape.contains(u, v) as usize;
            }
        }
        inside as f32 / (n * n) as f32
    }

    #[test]
    fn every_shape_is_a_substantial_part_of_its_frame() {
        for shape in Shape::ALL {
            let c = coverage(shape);
            assert!((0.1..0.75).contains(&c), "{}: {c}", shape.name());
        }
    }

    #[test]
    fn silhouettes_differ_pairwise() {
        let n = 64;
        let grid: Vec<(f32, f32)> = (0..n * n)
            .map(|k| {
                (
                    -1.0 + 2.0 * ((k % n) as f32 + 0.5) / n as f32,
                    -1.0 + 2.0 * ((k / n) as f32 + 0.5) / n as f32,
                )
            })
            .collect();
        for (i, a) in Shape::ALL.iter().enumerate() {
            for b in &Shape::ALL[i + 1..] {
                let differing = grid
                    .iter()
                    .filter(|&&(u, v)| a.contains(u, v) != b.contains(u, v))
                    .count();
                assert!(
                    differing > n * n / 20,
                    "{} vs {}: {differing}",
                    a.name(),
                    b.name()
                );
            }
        }
    }

    #[test]
    fn ring_and_crescent_have_holes_and_star_has_points() {
        assert!(!Shape::Ring.contains(0.0, 0.0));
        assert!(Shape::Disc.contains(0.0, 0.0));
        assert!(!Shape::Crescent.contains(0.6, 0.0));
        // Points at 0, 72, 144... degrees; inner vertices at 36, 108... degrees.
        assert!(Shape::Star.contains(0.95, 0.0));
        let between = 36f32.to_radians();
        assert!(!Shape::Star.contains(0.6 * between.cos(), 0.6 * between.sin()));
        assert!(Shape::Star.contains(0.4 * between.cos(), 0.4 * between.sin()));
    }
}
