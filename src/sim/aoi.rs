//! Area of interest: who is near whom, for `snapshot_for`. A radius test,
//! and a grid that buckets points by cell so a query looks at the few
//! cells a circle touches instead of every point.
//!
//! ```
//! use pylon_workers::sim::aoi::{within, Grid};
//! assert!(within((0.0, 0.0), (3.0, 4.0), 5.0));
//! let mut grid = Grid::new(10.0);
//! grid.insert("ada", 1.0, 1.0);
//! grid.insert("bob", 4.0, 5.0);
//! grid.insert("cy", 90.0, 90.0);
//! assert_eq!(grid.near(0.0, 0.0, 8.0), vec!["ada", "bob"]);
//! ```
//!
//! Results come sorted, so a state that builds its snapshot from them
//! stays deterministic.

use std::collections::HashMap;

/// Whether `a` and `b` are at most `radius` apart.
pub fn within(a: (f64, f64), b: (f64, f64), radius: f64) -> bool {
    let (dx, dy) = (a.0 - b.0, a.1 - b.1);
    dx * dx + dy * dy <= radius * radius
}

/// Points bucketed by square cells of side `cell`. Rebuild it each tick
/// (inserting is cheap), or keep it and [`Grid::remove`] moved points.
#[derive(Clone, Debug)]
pub struct Grid<K> {
    cell: f64,
    cells: HashMap<(i64, i64), Cell<K>>,
}

/// The points in one cell.
type Cell<K> = Vec<(K, f64, f64)>;

impl<K: Clone + Ord> Grid<K> {
    /// A grid of cells of side `cell` (a little over the usual query
    /// radius works well).
    pub fn new(cell: f64) -> Grid<K> {
        Grid {
            cell: if cell > 0.0 { cell } else { 1.0 },
            cells: HashMap::new(),
        }
    }

    fn key(&self, x: f64, y: f64) -> (i64, i64) {
        (
            (x / self.cell).floor() as i64,
            (y / self.cell).floor() as i64,
        )
    }

    pub fn insert(&mut self, k: K, x: f64, y: f64) {
        let key = self.key(x, y);
        self.cells.entry(key).or_default().push((k, x, y));
    }

    /// Removes `k`, which was inserted at `(x, y)`.
    pub fn remove(&mut self, k: &K, x: f64, y: f64) {
        let key = self.key(x, y);
        if let Some(v) = self.cells.get_mut(&key) {
            v.retain(|(other, _, _)| other != k);
            if v.is_empty() {
                self.cells.remove(&key);
            }
        }
    }

    /// Everything within `radius` of `(x, y)`, sorted.
    pub fn near(&self, x: f64, y: f64, radius: f64) -> Vec<K> {
        let (lo, hi) = (
            self.key(x - radius, y - radius),
            self.key(x + radius, y + radius),
        );
        let mut out = Vec::new();
        for cx in lo.0..=hi.0 {
            for cy in lo.1..=hi.1 {
                for (k, px, py) in self.cells.get(&(cx, cy)).into_iter().flatten() {
                    if within((x, y), (*px, *py), radius) {
                        out.push(k.clone());
                    }
                }
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grid_agrees_with_a_scan() {
        let pts: Vec<(u32, f64, f64)> = (0..200)
            .map(|i| {
                (
                    i,
                    f64::from(i * 37 % 101) - 50.0,
                    f64::from(i * 53 % 97) - 48.0,
                )
            })
            .collect();
        let mut grid = Grid::new(7.0);
        for (k, x, y) in &pts {
            grid.insert(*k, *x, *y);
        }
        for (qx, qy, r) in [(0.0, 0.0, 10.0), (-50.0, 40.0, 25.0), (3.5, -2.0, 0.5)] {
            let mut scan: Vec<u32> = pts
                .iter()
                .filter(|(_, x, y)| within((qx, qy), (*x, *y), r))
                .map(|(k, _, _)| *k)
                .collect();
            scan.sort();
            assert_eq!(grid.near(qx, qy, r), scan);
        }
        grid.remove(&0, pts[0].1, pts[0].2);
        assert!(!grid.near(pts[0].1, pts[0].2, 0.1).contains(&0));
    }
}
