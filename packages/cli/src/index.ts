/** The hearth command: server, agent, demo. */
export {};
