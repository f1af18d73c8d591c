"""Writes for hosts and stacks. Views, the API, the admin and tasks change state only through these.

- ``launch``: claim quota, a host and ports for a new stack, and queue its build;
- ``build``: the worker's side of a launch (image, base volume, overlay, domain);
- ``base_images``: upload a cached image once into a host's pool, claimed by a row;
- ``lifecycle``: renew a lease, destroy a stack, tear it down, expire leases;
- ``cleanup``: remove an instance's domain and disk from its host;
- ``hosts``: register hosts and read their capacity and health;
- ``reconcile``: remove what this deployment made on a host that no instance claims;
- ``events``: progress lines on a stack, announced to its watchers.
"""
