//! A real Docker Swarm of several engines for a test, by
//! `scripts/swarm.sh`: each node is a dockerd in a container of its own,
//! with its API on a Unix socket of the host. Dropping the [`TestSwarm`]
//! takes it down, and only it.

use std::process::Command;

use crate::images::{run, workspace_root, ImageError};

const HINT: &str = "see scripts/swarm.sh; `docker logs <node>` says why a node's engine failed";

#[derive(Debug, Clone)]
pub struct SwarmNode {
    /// The node's container, which is also its hostname in the swarm.
    pub name: String,
    /// Its engine, as `unix:///...`.
    pub host: String,
    /// Its address on the swarm's network, where its published ports are.
    pub addr: String,
}

pub struct TestSwarm {
    pub name: String,
    /// The manager first, then the workers.
    pub nodes: Vec<SwarmNode>,
}

impl TestSwarm {
    /// Starts `count` engines under a name unique to this process and
    /// `tag`, and joins them: the first manages, the others work.
    pub fn up(tag: &str, count: usize) -> Result<TestSwarm, ImageError> {
        TestSwarm::up_with_managers(tag, count, 1)
    }

    /// As [`TestSwarm::up`], with the first `managers` nodes managers.
    pub fn up_with_managers(
        tag: &str,
        count: usize,
        managers: usize,
    ) -> Result<TestSwarm, ImageError> {
        let name = format!("ct{}-{tag}", std::process::id());
        let out = script(&["up", &name, &count.to_string(), &managers.to_string()])?;
        // From here on the swarm exists, so a failure below still takes it down.
        let mut swarm = TestSwarm {
            name,
            nodes: Vec::new(),
        };
        swarm.nodes = out
            .lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                Some(SwarmNode {
                    name: fields.next()?.to_owned(),
                    host: format!("unix://{}", fields.next()?),
                    addr: fields.next()?.to_owned(),
                })
            })
            .collect();
        assert_eq!(
            swarm.nodes.len(),
            count,
            "scripts/swarm.sh up printed {out:?}"
        );
        Ok(swarm)
    }

    /// Copies local images into every node: no node reaches a registry.
    pub fn load(&self, images: &[&str]) -> Result<(), ImageError> {
        let mut args = vec!["load", self.name.as_str()];
        args.extend_from_slice(images);
        script(&args).map(drop)
    }

    pub fn manager(&self) -> &SwarmNode {
        &self.nodes[0]
    }

    /// The host's address on the swarm's network: what the nodes reach
    /// the host at (a CA the test runs, say).
    pub fn gateway(&self) -> Result<String, ImageError> {
        run(
            Command::new("docker").args([
                "network",
                "inspect",
                "-f",
                "{{(index .IPAM.Config 0).Gateway}}",
                &format!("{}-net", self.name),
            ]),
            HINT,
        )
        .map(|out| out.trim().to_string())
    }

    /// The folder every node sees as /srv/cutover (scripts/swarm.sh).
    pub fn shared(&self) -> std::path::PathBuf {
        let root =
            std::env::var_os("CUTOVER_SWARM_DIR").unwrap_or_else(|| "/tmp/cutover-swarm".into());
        std::path::Path::new(&root).join(&self.name).join("shared")
    }

    /// A command in node `node`'s own container (its network namespace,
    /// its iptables), not in its engine; its stdout.
    pub fn exec(&self, node: usize, args: &[&str]) -> Result<String, ImageError> {
        run(
            Command::new("docker")
                .args(["exec", &self.nodes[node].name])
                .args(args),
            HINT,
        )
    }

    /// Cuts node `node` off from the other nodes, both ways (raft, gossip,
    /// the overlay's VXLAN, the edges' control API): packets are dropped,
    /// not refused, as on a real partition. The host still reaches it.
    pub fn partition(&self, node: usize) -> Result<(), ImageError> {
        self.peer_rules(node, "-I")
    }

    /// Undoes [`TestSwarm::partition`].
    pub fn heal(&self, node: usize) -> Result<(), ImageError> {
        self.peer_rules(node, "-D")
    }

    fn peer_rules(&self, node: usize, op: &str) -> Result<(), ImageError> {
        for peer in self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != node)
            .map(|(_, p)| p)
        {
            for (chain, dir) in [("INPUT", "-s"), ("OUTPUT", "-d")] {
                self.exec(
                    node,
                    &["iptables", op, chain, dir, &peer.addr, "-j", "DROP"],
                )?;
            }
        }
        Ok(())
    }

    /// The docker CLI against one node's engine; its stdout.
    pub fn docker(&self, node: usize, args: &[&str]) -> Result<String, ImageError> {
        run(
            Command::new("docker")
                .arg("-H")
                .arg(&self.nodes[node].host)
                .args(args),
            HINT,
        )
    }
}

impl Drop for TestSwarm {
    fn drop(&mut self) {
        if let Err(e) = script(&["down", &self.name]) {
            eprintln!("taking swarm {} down failed: {e}", self.name);
        }
    }
}

fn script(args: &[&str]) -> Result<String, ImageError> {
    run(
        Command::new("bash")
            .arg(workspace_root().join("scripts/swarm.sh"))
            .args(args),
        HINT,
    )
}
