use super::*;

#[test]
fn factor_three_gives_torchvisions_seven_edges() {
    let bins = aspect_ratio_bins(3);
    assert_eq!(bins.len(), 7);
    assert_eq!((bins[0], bins[3], bins[6]), (0.5, 1.0, 2.0));
    // numpy: (2 ** np.linspace(-1, 1, 7)).tolist()
    assert!((bins[2] - 0.7937005259840997).abs() < 1e-15);
    assert!((bins[4] - 1.2599210498948732).abs() < 1e-15);
    // Portrait 480x640 (h/w 1.33) and landscape 640x480 (0.75) fall in different groups;
    // a square image sits right of the 1.0 edge (bisect_right), as in Python.
    let groups = aspect_ratio_groups(&[(480, 640), (640, 480), (10, 10)], 3);
    assert_eq!(groups, [5, 2, 4]);
}

#[test]
fn leftovers_are_completed_from_their_own_group() {
    // Items 0..5 in group 0, 5..7 in group 1; batch 4 -> 7/4 = 1 full batch expected.
    let groups = [0, 0, 0, 0, 0, 1, 1];
    let order = [5, 0, 1, 6, 2, 3, 4];
    let batches = grouped_batches(&order, &groups, 4);
    assert_eq!(batches, vec![vec![0, 1, 2, 3]]);
    let batches = grouped_batches(&order, &groups, 3);
    // Tie between the leftovers [3, 4] and [5, 6]: group 1's buffer is older.
    assert_eq!(batches, vec![vec![0, 1, 2], vec![5, 6, 5]]);
}
