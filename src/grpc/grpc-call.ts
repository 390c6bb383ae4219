import type { Channel } from '@grpc/grpc-js';

/*
 * grpc-js's client call, named through its public types only (grpc-js exports the `Call`
 * interface its channels return under no name of its own).
 */

/** grpc-js's `Call`: the object a channel's `createCall` returns. */
export type GrpcCall = ReturnType<Channel['createCall']>;
/** The server call a client call may propagate deadline and cancellation from. */
export type ParentCall = Parameters<Channel['createCall']>[3];
/** The context of one `sendMessageWithContext`. */
export type MessageContext = Parameters<GrpcCall['sendMessageWithContext']>[0];
export type WriteCallback = NonNullable<MessageContext['callback']>;
export type AuthContext = ReturnType<GrpcCall['getAuthContext']>;
