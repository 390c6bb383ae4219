export declare const GRPC_MINORS: readonly string[];
export declare function undici8Runs(nodeVersion: string): boolean;
export declare function peerMatrix(nodeVersion: string): { group: string; name: string; pkg: string; spec: string; dir: string }[];
