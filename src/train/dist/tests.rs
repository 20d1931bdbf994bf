use std::time::Duration;

use candle_core::{Device, Tensor};

use super::tcp::TcpCollective;
use super::threads::ThreadHub;
use super::*;

/// Runs `body(collective)` on `world` ranks as threads of a hub; the results by rank.
fn on_threads<T: Send + 'static>(
    world: usize,
    timeout: Duration,
    body: impl Fn(&mut dyn Collective) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let hub = ThreadHub::new(world, timeout);
    let body = std::sync::Arc::new(body);
    let handles: Vec<_> = (0..world)
        .map(|rank| {
            let mut c = hub.join(rank);
            let body = body.clone();
            std::thread::spawn(move || body(&mut c))
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// Rank `r` contributes `[r + 1, 10 (r + 1), 0.1]`.
fn contribution(rank: usize) -> Tensor {
    let r = rank as f32 + 1.0;
    Tensor::new(&[r, 10.0 * r, 0.1], &Device::Cpu).unwrap()
}

/// The sum of three ranks' contributions, added in rank order in f32 by hand.
fn expected_sum() -> Vec<f32> {
    let mut s = [1.0f32, 10.0, 0.1];
    for r in [2.0f32, 3.0] {
        s[0] += r;
        s[1] += 10.0 * r;
        s[2] += 0.1;
    }
    s.to_vec()
}

#[test]
fn threads_sum_broadcast_and_gather() {
    check_exchanges(on_threads(3, Duration::from_secs(20), exchange));
}

/// What one rank of three got from [`exchange`].
type Exchanged = (Vec<f32>, Vec<u8>, Option<Vec<Vec<u8>>>);

/// Every collective call once: a sum of [`contribution`]s, a broadcast, a gather, a barrier.
fn exchange(c: &mut dyn Collective) -> Exchanged {
    let sum = c.all_reduce_sum(&contribution(c.rank())).unwrap();
    let said = c
        .broadcast(format!("from {}", c.rank()).as_bytes())
        .unwrap();
    let gathered = c.gather(&[c.rank() as u8]).unwrap();
    c.barrier().unwrap();
    (sum.to_vec1::<f32>().unwrap(), said, gathered)
}

/// Three ranks' [`exchange`]: the same sum everywhere, rank 0's words, the gather on rank 0.
fn check_exchanges(got: Vec<Exchanged>) {
    for (rank, (sum, said, gathered)) in got.into_iter().enumerate() {
        assert_eq!(sum, expected_sum(), "rank {rank}");
        assert_eq!(said, b"from 0");
        let want = (rank == 0).then(|| vec![vec![0u8], vec![1], vec![2]]);
        assert_eq!(gathered, want);
    }
}

#[test]
fn a_thread_that_leaves_fails_the_others_call_naming_it() {
    let got = on_threads(2, Duration::from_secs(20), |c| {
        if c.rank() == 1 {
            c.abort("rank 1 ran out of images");
            return String::new();
        }
        std::thread::sleep(Duration::from_millis(100));
        c.all_reduce_sum(&contribution(0)).unwrap_err().to_string()
    });
    assert!(got[0].contains("rank 1"), "{}", got[0]);
}

#[test]
fn a_thread_that_never_calls_times_the_others_out() {
    let got = on_threads(2, Duration::from_millis(300), |c| {
        if c.rank() == 1 {
            std::thread::sleep(Duration::from_secs(2));
            return String::new();
        }
        c.barrier().unwrap_err().to_string()
    });
    assert!(got[0].contains("rank 1 did not answer"), "{}", got[0]);
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `body` on `world` ranks joined over loopback TCP (threads standing in for processes).
fn on_tcp<T: Send + 'static>(
    world: usize,
    timeout: Duration,
    body: impl Fn(&mut dyn Collective) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let master = format!("127.0.0.1:{}", free_port());
    let body = std::sync::Arc::new(body);
    let handles: Vec<_> = (0..world)
        .map(|rank| {
            let (master, body) = (master.clone(), body.clone());
            std::thread::spawn(move || {
                let mut c = TcpCollective::connect(&master, rank, world, timeout).unwrap();
                body(&mut c)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn tcp_sum_broadcast_and_gather() {
    check_exchanges(on_tcp(3, Duration::from_secs(20), exchange));
}

#[test]
fn tcp_rank_that_disconnects_is_named_on_every_other_rank() {
    let got = on_tcp(3, Duration::from_secs(20), |c| {
        if c.rank() == 2 {
            return String::new(); // the connection closes when `c` is dropped
        }
        c.all_reduce_sum(&contribution(c.rank()))
            .unwrap_err()
            .to_string()
    });
    assert!(
        got[0].contains("rank 2 closed its connection"),
        "{}",
        got[0]
    );
    assert!(
        got[1].contains("rank 0 stopped: rank 2 closed"),
        "{}",
        got[1]
    );
}

#[test]
fn tcp_ranks_calling_different_operations_are_told() {
    let got = on_tcp(2, Duration::from_secs(20), |c| {
        let r = if c.rank() == 0 {
            c.gather(b"x").map(|_| ())
        } else {
            c.all_reduce_sum(&contribution(1)).map(|_| ())
        };
        r.err().map(|e| e.to_string()).unwrap_or_default()
    });
    for message in got {
        let want = "at gather #1, rank 1 sent all_reduce #1";
        assert!(message.contains(want), "{message}");
    }
}

#[test]
fn tcp_refuses_a_rank_outside_the_world() {
    let err = TcpCollective::connect("127.0.0.1:1", 2, 2, Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("rank 2 is outside a world of 2"),
        "{err}"
    );
}

#[test]
fn buckets_average_gradients_and_keep_absent_ones_absent() {
    use candle_core::Var;
    // Rank r: parameter a has gradient [r+1, 2(r+1)], b has one only on rank 0, c on none.
    let got = on_threads(2, Duration::from_secs(20), |c| {
        let dev = Device::Cpu;
        let a = Var::new(&[0f32, 0.0], &dev).unwrap();
        let b = Var::new(&[0f32; 3], &dev).unwrap();
        let cvar = Var::new(&[0f32], &dev).unwrap();
        let loss = if c.rank() == 0 {
            let w = Tensor::new(&[1f32, 2.0], &dev).unwrap();
            let wb = Tensor::new(&[3f32, 4.0, 5.0], &dev).unwrap();
            (a.as_tensor().mul(&w).unwrap().sum_all().unwrap()
                + b.as_tensor().mul(&wb).unwrap().sum_all().unwrap())
            .unwrap()
        } else {
            let w = Tensor::new(&[2f32, 4.0], &dev).unwrap();
            a.as_tensor().mul(&w).unwrap().sum_all().unwrap()
        };
        let mut grads = loss.backward().unwrap();
        let params = vec![
            ("a".to_string(), a.clone()),
            ("b".into(), b.clone()),
            ("c".into(), cvar.clone()),
        ];
        let mine = [c.rank() as f32 + 0.5];
        let extra = all_reduce_mean(c, &params, &mut grads, &mine).unwrap();
        let get = |v: &Var| {
            grads
                .get(v.as_tensor())
                .map(|g| g.to_vec1::<f32>().unwrap())
        };
        (get(&a), get(&b), get(&cvar), extra)
    });
    for (ga, gb, gc, extra) in got {
        assert_eq!(ga, Some(vec![1.5, 3.0]));
        assert_eq!(
            gb,
            Some(vec![1.5, 2.0, 2.5]),
            "absent on rank 1: counted as zeros"
        );
        assert_eq!(gc, None, "absent on every rank: stays absent");
        assert_eq!(extra, vec![2.0]);
    }
}
